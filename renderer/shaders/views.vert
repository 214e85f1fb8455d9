#version 330 core
#extension GL_ARB_shader_viewport_layer_array : require
// pyrender's mesh.vert (MIT licence) for a mesh with normals, unchanged except that
// instance i draws view i into layer i of the framebuffer (V is chosen by gl_InstanceID),
// and that it passes on which side of its face the camera sees (`facing`, from the
// provoking vertex, so one sign for the whole face).
// The arithmetic is kept as pyrender writes it (M and inst_m are identities, but
// dropping them changes how the compiler rounds gl_Position, and so the images).

layout(location = 0) in vec3 position;
layout(location = 1) in vec3 normal;
layout(location = 2) in mat4 inst_m;

uniform mat4 M;
uniform mat4 views[NUM_VIEWS];
uniform mat4 P;
uniform vec3 cam_positions[NUM_VIEWS];

out vec3 frag_position;
out vec3 frag_normal;
flat out int view;
flat out float facing;

void main()
{
    view = gl_InstanceID;
    gl_Layer = gl_InstanceID;
    mat4 V = views[gl_InstanceID];
    gl_Position = P * V * M * inst_m * vec4(position, 1);
    frag_position = vec3(M * inst_m * vec4(position, 1.0));

    mat4 N = transpose(inverse(M * inst_m));

    frag_normal = normalize(vec3(N * vec4(normal, 0.0)));
    facing = dot(frag_normal, cam_positions[view] - frag_position);
}
